// Package iin parses and builds the 12-digit identification numbers of
// Kazakhstan: the IIN (ЖСН/ИИН) of an individual and the BIN (БСН/БИН) of a
// legal entity, branch, representative office or individual entrepreneur in
// joint entrepreneurship (Law No. 223 of 12 January 2007; formation rules in
// Government Decree No. 406 of 22 May 2007).
//
// # Validation
//
// A number is valid when it is exactly 12 ASCII digits and its 12th digit is
// the control digit of the first eleven. The control digit is computed the same
// way for IINs and BINs ([ControlDigit]): the weighted sum of the first eleven
// digits with weights 1..11, modulo 11; when that gives 10, a second pass with
// weights 3..11,1,2; when the second pass also gives 10, the 11-digit prefix is
// never issued and no 12-digit number with that prefix is valid.
//
// The control digit is a weak check. The 11th digit has weight 11 in the first
// pass, which is 0 modulo 11, so a mistyped 11th digit goes unnoticed in every
// number that the first pass decides (about 10 in 11); and when the second pass
// decides the original or the mistyped number, a change elsewhere can slip
// through too. A valid control digit shows a number is well-formed, not that
// it is the right person's: confirm it against the register.
//
// [Parse] and [ParseBIN] trim surrounding white space and do nothing else: no
// removal of inner spaces or dashes, no conversion of full-width or other
// non-ASCII digits. Errors are of type [*Error], carry a stable machine code
// (such as "iin.checksum") and match [ErrInvalid] with errors.Is.
//
// # Date and sex digits are not authoritative
//
// An IIN formed before 2013 encodes the birth date in digits 1-6 and the century
// and sex in digit 7. Government Decree No. 853 of 26 August 2013 removed that
// binding: a newly formed IIN may disagree with the person's real birth date or
// sex, and the Ministry of Justice states such a mismatch is not an error. So:
//
//   - Parse never rejects a number for an impossible date or for a century/sex
//     digit of 0 or 7-9; only length, digits and the control digit count.
//   - [IIN.BirthDate] and [IIN.Sex] are best-effort hints for display and
//     pre-filling forms. Never reject an application, nor decide anything (age,
//     sex, eligibility), on them; use the birth date and sex from the population
//     register instead.
//
// In an IIN the 5th digit is the tens digit of the day (0-3); in a BIN it is the
// type of the entity (4-6). [ParseBIN] rejects any other type digit with the
// code "bin.kind"; Parse does not look at it.
//
// Owns: the IIN and BIN types, their parsing, check digits and error codes
// ("iin.*", "bin.*"). No tables, routes or events.
//
// May import: the standard library only. It is a leaf: nothing internal.
package iin
