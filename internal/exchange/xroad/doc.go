// Package xroad is X-Road's REST client protocol as Ortaq speaks it: the
// identifiers INSTANCE/CLASS/MEMBER[/SUBSYSTEM], service identifiers,
// the /r1/{INSTANCE}/{CLASS}/{MEMBER}/{SUBSYSTEM}/{SERVICE}[/path] request
// path, the X-Road-* request and response headers, and X-Road's error
// answer (an X-Road-Error header and a JSON body with type, message and
// detail). It parses untrusted input and never panics on it (fuzzed).
//
// It is a leaf: pure parsing and formatting, no I/O beyond writing an error
// to an http.ResponseWriter.
//
// Owns: nothing stored; the wire vocabulary of the exchange.
//
// May import: the standard library only.
package xroad
