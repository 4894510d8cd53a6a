package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// consentPrefix marks a basis that is a consent id.
const consentPrefix = "consent:"

// ConsentChecker confirms that a data subject's consent covers a call:
// the client (requester "exchange:<client id>") may use the service (item
// "service:<service id>") for the purpose. A refusal is a
// *[ConsentRefusal]; any other error means the check could not be made
// (the call is refused too).
type ConsentChecker interface {
	CheckConsent(ctx context.Context, q ConsentQuery) error
}

// ConsentQuery is one consent check of the exchange.
type ConsentQuery struct {
	ConsentID string
	Subject   string // IIN
	Client    string // INSTANCE/CLASS/MEMBER/SUBSYSTEM
	Service   string // INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE
	Purpose   string
	MessageID string
	Side      string // "out" on the client's gateway, "in" on the provider's
}

// ConsentRefusal is a refused consent check; Code is the consent ledger's
// (consent.missing, consent.expired, consent.revoked).
type ConsentRefusal struct{ Code string }

func (e *ConsentRefusal) Error() string { return "consent refused: " + e.Code }

// refusedUnchecked marks, in the message log, a call refused because its
// consent could not be checked (not reported: it says nothing of the
// consent).
const refusedUnchecked = "consent.unchecked"

// checkConsent returns the refusal code and message of a call with a
// consent as its basis, or "", "".
func (n *Node) checkConsent(ctx context.Context, head *requestHead, id, side string) (code, msg string) {
	if n.cfg.Consent == nil {
		return refusedUnchecked, "personal data: this gateway cannot check consents (" + hConsent + "); send " + hLegalBasis
	}
	start := time.Now()
	err := n.cfg.Consent.CheckConsent(ctx, ConsentQuery{ConsentID: id, Subject: head.Subject, Client: head.Client,
		Service: head.Service, Purpose: head.Purpose, MessageID: head.ID, Side: side})
	n.mon.consentCheck.Observe(time.Since(start).Seconds())
	var refusal *ConsentRefusal
	switch {
	case errors.As(err, &refusal):
		return refusal.Code, "personal data: " + refusal.Code
	case err != nil:
		n.log.Error("consent check failed", "error", err)
		if errors.Is(err, ErrReplicaNotCurrent) {
			return refusedUnchecked, "personal data: the consent could not be checked (" + ErrReplicaNotCurrent.Error() + ")"
		}
		return refusedUnchecked, "personal data: the consent could not be checked"
	}
	return "", ""
}

// CentreConsent checks consents with the centre's ledger
// (POST /api/v1/consents/check), authenticated by a system token.
type CentreConsent struct {
	URL   string // the centre, e.g. http://centre:8080
	Token string // a system's bearer token (oq_...)
	HTTP  *http.Client
	// Unrecorded asks the centre not to record the check: the node reports
	// the call itself (access reports; the token needs the
	// exchange-gateway scope).
	Unrecorded bool
}

// CheckConsent implements [ConsentChecker].
func (c CentreConsent) CheckConsent(ctx context.Context, q ConsentQuery) error {
	body, _ := json.Marshal(map[string]any{"subject_iin": q.Subject, "requester": "exchange:" + q.Client,
		"items": []string{"service:" + q.Service}, "purpose": q.Purpose, "consent_id": q.ConsentID, "request_id": q.MessageID, "unrecorded": c.Unrecorded})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/api/v1/consents/check", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("consent check: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Code string `json:"code"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusForbidden && out.Code != "" && out.Code != "auth.forbidden":
		return &ConsentRefusal{Code: out.Code}
	case resp.StatusCode == http.StatusUnprocessableEntity:
		return &ConsentRefusal{Code: "consent.missing"}
	}
	return fmt.Errorf("consent check: centre answered %s (%s)", resp.Status, out.Code)
}
