package app_test

// The consent ledger's rows of the authorisation matrix (authz_test.go):
// the consent API (requesters are systems and agencies; the person sees
// and decides their own) and the GovStack Consent API under /gs/consent/
// (configuration read by anyone, written by systems and agencies; records
// for their person and their requester).
func init() {
	authzMatrix = append(authzMatrix, consentMatrix...)
}

var consentMatrix = []matrixRow{
	{"GET /api/v1/consents", "/api/v1/consents", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},
	{"GET /api/v1/consents/{id}", "/api/v1/consents/{uuid}", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"GET /api/v1/consents/{id}/receipts", "/api/v1/consents/{uuid}/receipts", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"GET /api/v1/consents/keys", "/api/v1/consents/keys", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /api/v1/consents/receipts/verify", "/api/v1/consents/receipts/verify", `{"jws":"a.b.c"}`, "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"POST /api/v1/consents", "/api/v1/consents", `{}`, "bank", [4]int{401, 403, 422, 422}, [2]string{}},
	{"POST /api/v1/consents/{id}/approve", "/api/v1/consents/{uuid}/approve", `{"code":"123456"}`, "bank", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /api/v1/consents/{id}/refuse", "/api/v1/consents/{uuid}/refuse", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /api/v1/consents/{id}/revoke", "/api/v1/consents/{uuid}/revoke", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /api/v1/consents/{id}/code", "/api/v1/consents/{uuid}/code", "", "bank", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /api/v1/consents/check", "/api/v1/consents/check", `{}`, "bank", [4]int{401, 403, 403, 422}, [2]string{}},

	{"GET /gs/consent/config/policies/", "/gs/consent/config/policies/", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/config/policy/{id}/", "/gs/consent/config/policy/nope/", "", "public", [4]int{404, 404, 404, 404}, [2]string{}},
	{"GET /gs/consent/service/policy/{id}/", "/gs/consent/service/policy/nope/", "", "public", [4]int{404, 404, 404, 404}, [2]string{}},
	{"GET /gs/consent/config/policy/{id}/revisions/", "/gs/consent/config/policy/nope/revisions/", "", "public", [4]int{404, 404, 404, 404}, [2]string{}},
	{"POST /gs/consent/config/policy/", "/gs/consent/config/policy/", `{}`, "bank", [4]int{401, 403, 400, 400}, [2]string{}},
	{"PUT /gs/consent/config/policy/{id}/", "/gs/consent/config/policy/nope/", `{}`, "bank", [4]int{401, 403, 400, 400}, [2]string{}},
	{"DELETE /gs/consent/config/policy/{id}/", "/gs/consent/config/policy/nope/", "", "bank", [4]int{401, 403, 404, 404}, [2]string{}},
	{"GET /gs/consent/config/data-agreements/", "/gs/consent/config/data-agreements/", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/service/verification/data-agreements/", "/gs/consent/service/verification/data-agreements/", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/audit/data-agreements/", "/gs/consent/audit/data-agreements/", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/config/data-agreement/{id}/", "/gs/consent/config/data-agreement/nope/", "", "public", [4]int{404, 404, 404, 404}, [2]string{}},
	{"GET /gs/consent/service/data-agreement/{id}/", "/gs/consent/service/data-agreement/nope/", "", "public", [4]int{404, 404, 404, 404}, [2]string{}},
	{"GET /gs/consent/audit/data-agreement/{id}/", "/gs/consent/audit/data-agreement/nope/", "", "public", [4]int{404, 404, 404, 404}, [2]string{}},
	{"POST /gs/consent/config/data-agreement/", "/gs/consent/config/data-agreement/", `{}`, "bank", [4]int{401, 403, 400, 400}, [2]string{}},
	{"PUT /gs/consent/config/data-agreement/{id}/", "/gs/consent/config/data-agreement/nope/", `{}`, "bank", [4]int{401, 403, 400, 400}, [2]string{}},
	{"DELETE /gs/consent/config/data-agreement/{id}/", "/gs/consent/config/data-agreement/nope/", "", "bank", [4]int{401, 403, 404, 404}, [2]string{}},
	{"GET /gs/consent/config/individuals/", "/gs/consent/config/individuals/", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/service/individuals/", "/gs/consent/service/individuals/", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/config/individual/{id}/", "/gs/consent/config/individual/nope/", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"GET /gs/consent/service/individual/{id}/", "/gs/consent/service/individual/nope/", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /gs/consent/config/individual/", "/gs/consent/config/individual/", `{"individual":{"externalId":"{iin}"}}`, "applicant", [4]int{401, 403, 200, 200}, [2]string{}},
	{"POST /gs/consent/service/individual/", "/gs/consent/service/individual/", `{"individual":{"externalId":"{iin}"}}`, "applicant", [4]int{401, 403, 200, 200}, [2]string{}},
	{"GET /gs/consent/service/individual/record/consent-record/", "/gs/consent/service/individual/record/consent-record/", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/service/verification/consent-records/", "/gs/consent/service/verification/consent-records/", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/audit/consent-records/", "/gs/consent/audit/consent-records/", "", "applicant", [4]int{401, 200, 200, 200}, [2]string{}},
	{"GET /gs/consent/service/verification/consent-record/{id}/", "/gs/consent/service/verification/consent-record/{uuid}/", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"GET /gs/consent/audit/consent-record/{id}/", "/gs/consent/audit/consent-record/{uuid}/", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"GET /gs/consent/service/individual/record/data-agreement/{id}/", "/gs/consent/service/individual/record/data-agreement/nope/", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"POST /gs/consent/service/individual/record/data-agreement/{id}/", "/gs/consent/service/individual/record/data-agreement/nope/?individualId=nope", "", "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
	{"PUT /gs/consent/service/individual/record/consent-record/{id}/", "/gs/consent/service/individual/record/consent-record/{uuid}/", `{"consentRecord":{"optIn":false}}`, "applicant", [4]int{401, 404, 404, 404}, [2]string{}},
}
