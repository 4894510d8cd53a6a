package app_test

// The exchange gateways' routes of the consent ledger (authz_test.go): the
// consent feed their replicas follow and the access reports they ship.
// Only a system with the exchange-gateway scope may use them; the owner's
// report is malformed (an empty batch) so that the matrix records nothing.
func init() {
	authzMatrix = append(authzMatrix, exchangeConsentMatrix...)
}

var exchangeConsentMatrix = []matrixRow{
	{"GET /api/v1/consents/feed", "/api/v1/consents/feed?wait_ms=0", "", "gateway", [4]int{401, 403, 403, 200}, [2]string{}},
	{"POST /api/v1/consents/access-reports", "/api/v1/consents/access-reports", `{"reports":[]}`, "gateway", [4]int{401, 403, 403, 422}, [2]string{}},
}
