// Package tidings holds the domain: the types every other package speaks in, their
// validation rules, the store interfaces with their documented errors, and the sentinel
// errors. It imports the standard library only (plus x/net/idna for addresses), so that
// every other package can depend on it and it depends on none of them.
package tidings
