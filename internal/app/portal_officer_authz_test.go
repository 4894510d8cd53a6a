package app_test

// The officer's pages' rows of the authorisation matrix (authz_test.go).
// The owner is the gpo special-records-officer who holds the review task;
// the wrong officer (mdai platform-administrator) has an inbox of its own
// (empty) but the task does not exist for them (404). Anonymous visitors
// are sent to sign in (303), citizens are forbidden. The owner's claim and
// release leave the task open as they found it; the decision fails (the
// task is not claimed: 409, shown on the task page).
func init() { authzMatrix = append(authzMatrix, officerPageMatrix...) }

var officerPageMatrix = []matrixRow{
	{"GET /officer", "/officer", "", "officer", [4]int{303, 403, 200, 200}, [2]string{}},
	{"GET /officer/tasks/{id}", "/officer/tasks/{task}", "", "officer", [4]int{303, 403, 404, 200}, [2]string{}},
	{"GET /officer/tasks/{id}", "/officer/tasks/{uuid}", "", "officer", [4]int{303, 403, 404, 404}, [2]string{}},
	{"GET /officer/tasks/{id}/attachments/{attachment}", "/officer/tasks/{task}/attachments/{uuid}", "", "officer", [4]int{303, 403, 404, 404}, [2]string{}},
	{"POST /officer/tasks/{id}/claim", "/officer/tasks/{task}/claim", "", "officer", [4]int{303, 403, 404, 303}, [2]string{}},
	{"POST /officer/tasks/{id}/release", "/officer/tasks/{task}/release", "", "officer", [4]int{303, 403, 404, 303}, [2]string{}},
	{"POST /officer/tasks/{id}/decision", "/officer/tasks/{task}/decision", "decision=approve", "officer", [4]int{303, 403, 404, 409}, [2]string{}},
}
