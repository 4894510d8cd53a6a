package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/exchange/msglog"
)

// maxReportBatch is the most entries shipped in one request (the centre
// takes up to 500).
const maxReportBatch = 500

// accessReport is one personal-data call as the centre's access log takes
// it (POST /api/v1/consents/access-reports).
type accessReport struct {
	MessageID  string    `json:"message_id"`
	Side       string    `json:"side"`
	At         time.Time `json:"at"`
	Client     string    `json:"client"`
	Service    string    `json:"service"`
	SubjectIIN string    `json:"subject_iin"`
	Purpose    string    `json:"purpose"`
	LegalBasis string    `json:"legal_basis,omitempty"`
	ConsentID  string    `json:"consent_id,omitempty"`
	Refused    string    `json:"refused,omitempty"`
}

// reported says whether an entry goes to the citizen's access log: each
// call once, from the node that decided it — the provider's gateway for
// every call that reached it, the client's gateway for those it refused
// itself — and only refusals that say something of the basis.
func reported(e msglog.Entry) bool {
	switch e.Refused {
	case "":
		return e.Direction == "in"
	case "consent.missing", "consent.expired", "consent.revoked":
		return true
	}
	return false
}

func reportOf(e msglog.Entry) accessReport {
	r := accessReport{MessageID: e.MessageID, Side: e.Direction, At: time.UnixMicro(e.AtMicros).UTC(), Client: e.Client, Service: e.Service,
		SubjectIIN: e.Subject, Purpose: e.Purpose, Refused: e.Refused}
	if id, ok := strings.CutPrefix(e.Basis, consentPrefix); ok {
		r.ConsentID = id
	} else {
		r.LegalBasis = e.Basis
	}
	return r
}

// reportsDue wakes the shipper after a personal-data entry was logged.
func (n *Node) reportsDue() {
	select {
	case n.shipWake <- struct{}{}:
	default:
	}
}

// ShipAccessReports sends the personal-data calls logged since the last
// acknowledged one to the centre's access log, in batches, and moves the
// node's durable cursor past each batch the centre acknowledged. A batch
// sent again (the answer was lost, the node stopped) is recorded once: the
// centre keys reports by this node's account, message id and side. It
// returns how many reports the centre took.
func (n *Node) ShipAccessReports(ctx context.Context) (int, error) {
	if n.cfg.CentreToken == "" {
		return 0, fmt.Errorf("access reports: no centre token configured")
	}
	n.shipMu.Lock()
	defer n.shipMu.Unlock()
	total := 0
	for {
		var upto int64
		if err := n.pool.QueryRow(ctx, `SELECT upto FROM gateway_access_cursor WHERE id = 1`).Scan(&upto); err != nil {
			return total, fmt.Errorf("access reports: read cursor: %w", err)
		}
		entries, err := msglog.PersonalAfter(ctx, n.pool, upto, maxReportBatch)
		if err != nil || len(entries) == 0 {
			return total, err
		}
		var batch []accessReport
		for _, e := range entries {
			if reported(e) {
				batch = append(batch, reportOf(e))
			}
		}
		if len(batch) > 0 {
			if err := n.postReports(ctx, batch); err != nil {
				return total, err
			}
		}
		if _, err := n.pool.Exec(ctx, `UPDATE gateway_access_cursor SET upto = $1 WHERE id = 1 AND upto < $1`, entries[len(entries)-1].Seq); err != nil {
			return total, fmt.Errorf("access reports: move cursor: %w", err)
		}
		total += len(batch)
		if len(entries) < maxReportBatch {
			return total, nil
		}
	}
}

func (n *Node) postReports(ctx context.Context, batch []accessReport) error {
	body, err := json.Marshal(map[string]any{"reports": batch})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(n.cfg.CentreURL, "/")+"/api/v1/consents/access-reports", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+n.cfg.CentreToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("access reports: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("access reports: centre answered %s: %s", resp.Status, b)
	}
	return nil
}

// shipGather is how long the shipper waits after a personal-data call
// before it ships: the citizen's access log is a moment behind, and the
// reports' writes keep off the exchanges' path.
const shipGather = 100 * time.Millisecond

// shipLoop ships access reports as they are logged (and every ShipEvery
// in any case, which also retries after a failure) until ctx ends.
func (n *Node) shipLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.ShipEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.shipWake:
			// Calls logged meanwhile go in the same batch: a busy node ships
			// a few times a second, not once per call.
			select {
			case <-ctx.Done():
				return
			case <-time.After(shipGather):
			}
		case <-t.C:
		}
		_, err := n.ShipAccessReports(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			n.log.Warn("access reports not shipped; retrying", "error", err)
			failing = true
		case err == nil && failing:
			n.log.Info("access reports shipped again")
			failing = false
		}
	}
}
