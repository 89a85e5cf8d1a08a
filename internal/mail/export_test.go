package mail

// AppendQP exposes appendQP to the external tests.
var AppendQP = appendQP
