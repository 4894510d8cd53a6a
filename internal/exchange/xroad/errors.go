package xroad

import (
	"encoding/json"
	"net/http"
)

// Error types as X-Road names them ("Client.*" the caller's fault,
// "Server.*" the gateways' or provider's).
const (
	ErrBadRequest       = "Client.BadRequest"
	ErrInvalidClientID  = "Client.InvalidClientIdentifier"
	ErrInvalidServiceID = "Client.InvalidServiceIdentifier"
	ErrUnknownMember    = "Server.ClientProxy.UnknownMember"
	ErrUnknownService   = "Server.ServerProxy.UnknownService"
	ErrAccessDenied     = "Server.ServerProxy.AccessDenied"
	ErrClientDenied     = "Server.ClientProxy.ClientNotOwned"
	ErrNetwork          = "Server.ClientProxy.NetworkError"
	ErrSslAuth          = "Server.ClientProxy.SslAuthenticationFailed"
	ErrSignature        = "Server.ServerProxy.InvalidSignature"
	ErrReplay           = "Server.ServerProxy.DuplicateMessage"
	ErrOutdatedConf     = "Server.ClientProxy.OutdatedGlobalConf"
	ErrServiceFailed    = "Server.ServerProxy.ServiceFailed"
	ErrPersonalData     = "Client.PersonalDataBasisMissing"
	ErrInternal         = "Server.ClientProxy.InternalError"
)

// ErrorBody is X-Road's JSON error body.
type ErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// WriteError answers with X-Road's error form: header X-Road-Error and a JSON
// body. detail is an id the operator can find in the logs.
func WriteError(w http.ResponseWriter, status int, typ, message, detail string) {
	w.Header().Set(HeaderError, typ)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Type: typ, Message: message, Detail: detail})
}
