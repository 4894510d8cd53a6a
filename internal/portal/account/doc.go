// Package account is the citizen's own corner of the portal and the public
// verification of documents: my documents (with download, a QR code that
// opens the public check, and sharing by one-time code), my notifications,
// my consents (approve a pending request with the code from the SMS,
// refuse, revoke; the signed receipts), and "who used my data".
//
// Every page of the account is the signed-in citizen's own: anonymous
// visitors are sent to sign in, other kinds of users get 403, and another
// person's document or consent answers 404, as if it did not exist. The
// capabilities audit what is read (documents, shares, consents); the pages
// read nothing from tables themselves.
//
// Verification is public: /verify checks a pasted signed document (JWS) or
// opens a document with its number and a share code; /verify/{id} (the
// QR code's address) says whether the document is genuine and shows only
// facts that are not personal (kind, title, issuer, date, status).
//
// Owns: routes /documents, /documents/{id}, /documents/{id}/jws,
// /documents/{id}/json, /documents/{id}/shares, /documents/{id}/shares/{share}/revoke,
// /verify, /verify/share, /verify/{id}, /notifications, /consents,
// /consents/{id}/approve, /consents/{id}/refuse, /consents/{id}/revoke,
// /my-data; i18n keys portal.account.*.
//
// May import: internal/portal, internal/web, internal/apierr, internal/i18n,
// internal/identity, internal/document, internal/consent, internal/notify,
// internal/registry.
package account
