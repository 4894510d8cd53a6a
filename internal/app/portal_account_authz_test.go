package app_test

// The citizen's account pages (internal/portal/account): the signed-in
// citizen's own documents, shares, notifications, consents and access log
// (anonymous: to sign in; officers: 403; another person's: 404), and the
// public verification pages. GET /documents/{id}, GET and POST /verify keep
// their rows in authz_test.go.
func init() {
	authzMatrix = append(authzMatrix, portalAccountMatrix...)
}

var portalAccountMatrix = []matrixRow{
	{"GET /documents", "/documents", "", "applicant", [4]int{303, 200, 403, 200}, [2]string{}},
	{"GET /documents/{id}", "/documents/not-a-uuid", "", "applicant", [4]int{303, 404, 404, 404}, [2]string{}},
	{"GET /documents/{id}/jws", "/documents/{doc}/jws", "", "applicant", [4]int{303, 404, 404, 200}, [2]string{}},
	{"GET /documents/{id}/json", "/documents/{doc}/json", "", "applicant", [4]int{303, 404, 404, 200}, [2]string{}},
	{"POST /documents/{id}/shares", "/documents/{doc}/shares", "", "applicant", [4]int{303, 404, 403, 201}, [2]string{}},
	{"POST /documents/{id}/shares/{share}/revoke", "/documents/{doc}/shares/{uuid}/revoke", "", "applicant", [4]int{303, 404, 403, 404}, [2]string{}},
	{"POST /verify/share", "/verify/share", "document={doc}&code=AAAAA-AAAAA", "public", [4]int{422, 422, 422, 422}, [2]string{}},
	{"GET /verify/{id}", "/verify/{doc}", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /verify/{id}", "/verify/{uuid}", "", "public", [4]int{404, 404, 404, 404}, [2]string{}},
	{"GET /notifications", "/notifications", "", "applicant", [4]int{303, 200, 200, 200}, [2]string{}},
	{"GET /consents", "/consents", "", "applicant", [4]int{303, 200, 403, 200}, [2]string{}},
	{"POST /consents/{id}/approve", "/consents/{uuid}/approve", "code=123456", "applicant", [4]int{303, 404, 403, 404}, [2]string{}},
	{"POST /consents/{id}/refuse", "/consents/{uuid}/refuse", "", "applicant", [4]int{303, 404, 403, 404}, [2]string{}},
	{"POST /consents/{id}/revoke", "/consents/{uuid}/revoke", "", "applicant", [4]int{303, 404, 403, 404}, [2]string{}},
	{"GET /my-data", "/my-data", "", "applicant", [4]int{303, 200, 403, 200}, [2]string{}},
}
