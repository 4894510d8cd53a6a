package app_test

// The administrator's and analyst's pages' rows of the authorisation matrix
// (authz_test.go). The matrix's wrong officer (mdai platform-administrator)
// IS the administrator of these pages, so the services and publishing rows
// name it as their owner ("wrong") and it gets what the owner gets. The
// registries and the catalogue are also for analysts (officers who may read
// some registry): their owner is the mia migration-officer ("reader"), who
// reads the population registry; the administrator sees the registries but
// no records (the registry's rules give mdai no reads: 403).
func init() { authzMatrix = append(authzMatrix, adminPageMatrix...) }

var adminPageMatrix = []matrixRow{
	{"GET /admin/services", "/admin/services", "", "wrong", [4]int{303, 403, 200, 200}, [2]string{}},
	{"GET /admin/services/{id}", "/admin/services/address-certificate", "", "wrong", [4]int{303, 403, 200, 200}, [2]string{}},
	{"GET /admin/services/{id}", "/admin/services/nope", "", "wrong", [4]int{303, 403, 404, 404}, [2]string{}},
	{"GET /admin/publish", "/admin/publish", "", "wrong", [4]int{303, 403, 200, 200}, [2]string{}},
	// A check of a broken definition: nothing is published.
	{"POST /admin/publish", "/admin/publish", "action=check&source=id%3A+x", "wrong", [4]int{303, 403, 422, 422}, [2]string{}},
	{"GET /admin/registries", "/admin/registries", "", "reader", [4]int{303, 403, 200, 200}, [2]string{}},
	{"GET /admin/registries/{name}", "/admin/registries/population?purpose=test&f.iin={iin}", "", "reader", [4]int{303, 403, 403, 200}, [2]string{}},
	{"GET /admin/registries/{name}/{key}", "/admin/registries/population/{iin}?purpose=test", "", "reader", [4]int{303, 403, 403, 200}, [2]string{}},
	{"GET /admin/catalogue", "/admin/catalogue?q=address", "", "reader", [4]int{303, 403, 200, 200}, [2]string{}},
}
