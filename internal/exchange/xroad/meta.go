package xroad

// The JSON forms of X-Road's REST metaservices.

// ClientList answers listClients.
type ClientList struct {
	Member []ClientEntry `json:"member"`
}

// ClientEntry is one member or subsystem in ClientList.
type ClientEntry struct {
	ID   ClientIDEntry `json:"id"`
	Name string        `json:"name"`
}

// ClientIDEntry is an identifier with its object type.
type ClientIDEntry struct {
	ObjectType string `json:"object_type"`
	ClientID
}

// NewClientEntry describes id.
func NewClientEntry(id ClientID, name string) ClientEntry {
	return ClientEntry{ID: ClientIDEntry{ObjectType: id.ObjectType(), ClientID: id}, Name: name}
}

// MethodList answers listMethods and allowedMethods.
type MethodList struct {
	Service []MethodEntry `json:"service"`
}

// MethodEntry is one service in MethodList.
type MethodEntry struct {
	ObjectType  string `json:"object_type"`
	ServiceType string `json:"service_type"`
	ServiceID
}

// NewMethodEntry describes a REST service.
func NewMethodEntry(id ServiceID) MethodEntry {
	return MethodEntry{ObjectType: "SERVICE", ServiceType: "REST", ServiceID: id}
}
