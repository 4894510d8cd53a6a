package app_test

// The citizen's applying journey (internal/portal/citizen): the catalogue
// and service pages are public; applying, drafts and my applications are
// the signed-in citizen's (officers get 403); an application is its
// applicant's (anyone else: 404). Writes fail harmlessly for the owner: an
// unknown service, a decided application.
func init() { authzMatrix = append(authzMatrix, citizenPortalMatrix...) }

var citizenPortalMatrix = []matrixRow{
	{"GET /{$}", "/", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /services/{id}", "/services/address-certificate", "", "public", [4]int{200, 200, 200, 200}, [2]string{}},
	{"GET /applications", "/applications", "", "applicant", [4]int{303, 200, 403, 200}, [2]string{}},
	{"GET /applications/{id}", "/applications/{done}", "", "applicant", [4]int{303, 404, 404, 200}, [2]string{}},
	{"POST /services/{id}/apply", "/services/nope/apply", "", "applicant", [4]int{303, 404, 403, 404}, [2]string{}},
	{"POST /services/{id}/draft", "/services/nope/draft", "", "applicant", [4]int{303, 404, 403, 404}, [2]string{}},
	{"POST /apply/{id}", "/apply/nope", "", "applicant", [4]int{303, 404, 403, 404}, [2]string{}},
	{"POST /applications/{id}/withdraw", "/applications/{done}/withdraw", "", "applicant", [4]int{303, 404, 403, 409}, [2]string{}},
	{"POST /applications/{id}/correct", "/applications/{done}/correct", "", "applicant", [4]int{303, 404, 403, 409}, [2]string{}},
}
