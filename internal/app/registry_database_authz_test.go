package app_test

// The registries' definition management rows of the authorisation matrix
// (authz_test.go): publishing a definition file (POST /api/v1/registries)
// and the GovStack Digital Registries Database API under
// /gs/registries/database... Reads name the calling system in the
// mediator's header (missing: 400); publishing and archiving need a
// platform administrator (the matrix's officer of the wrong agency is
// mdai's, who may: the body or id fails instead) or a registry
// administrator of the owner agency (the registry officer is not one:
// 403).
func init() {
	authzMatrix = append(authzMatrix, registryDatabaseMatrix...)
}

var registryDatabaseMatrix = []matrixRow{
	{"GET /gs/registries/databases", "/gs/registries/databases", "", "bank", [4]int{400, 400, 400, 200}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"GET /gs/registries/database/{id}", "/gs/registries/database/1", "", "bank", [4]int{400, 400, 400, 200}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"POST /gs/registries/database/modify", "/gs/registries/database/modify", `{}`, "writer", [4]int{401, 403, 422, 403}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"DELETE /gs/registries/database/{id}", "/gs/registries/database/999999", "", "writer", [4]int{401, 403, 404, 403}, [2]string{"Information-Mediator-Client", "KZ/COM/123456789012/bank"}},
	{"POST /api/v1/registries", "/api/v1/registries", "id: x", "writer", [4]int{401, 403, 422, 403}, [2]string{}},
}
