package tidings

import (
	"errors"
	"fmt"
)

// Sentinel errors returned by stores and services. Callers test them with errors.Is;
// the web layer maps each to one HTTP status.
var (
	// ErrNotFound: the row does not exist, or belongs to another account. The two are
	// deliberately indistinguishable so that tenants cannot probe each other's IDs.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule would be broken (same address twice in one account, …).
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: no valid credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: valid credentials, but the action needs a role the caller lacks.
	ErrForbidden = errors.New("forbidden")
	// ErrSuppressed: the address is on a suppression list and may not be added.
	ErrSuppressed = errors.New("suppressed")
	// ErrConsentTextAltered: a stored consent text's body no longer hashes to the SHA-256
	// stored with it (changed in the database). It is refused, never shown or signed.
	ErrConsentTextAltered = errors.New("consent text was altered: its body no longer matches its stored SHA-256")
)

// ValidationError reports one bad input field in words a user can act on.
type ValidationError struct {
	Field   string // the offending field, as the user named it ("email", "lists[2]", "row 17: email")
	Code    string // stable machine code, e.g. "invalid_email", "required", "too_long"
	Message string // human sentence, without the field name
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// Invalid builds a *ValidationError.
func Invalid(field, code, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsValidation returns the *ValidationError inside err, if any.
func AsValidation(err error) (*ValidationError, bool) {
	var v *ValidationError
	ok := errors.As(err, &v)
	return v, ok
}
