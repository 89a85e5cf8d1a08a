package tidings

import "context"

// MembershipStore changes staff roles under the rule that every account keeps an owner.
type MembershipStore interface {
	// UpdateMembership changes a member's role, or removes the member when role is "".
	// It is ErrNotFound if the user is not a member of the account, and a
	// *ValidationError (field "role", code "last_owner") if the account would be left
	// without an owner. The check and the change are one transaction, so two owners
	// demoting each other at once cannot leave the account ownerless.
	UpdateMembership(ctx context.Context, accountID, userID int64, role Role) error
}
