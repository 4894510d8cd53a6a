package consent

// ParseReceipt exposes the receipt parser to the fuzz test.
func ParseReceipt(jws string) bool {
	_, ok := parseReceipt(jws)
	return ok
}
