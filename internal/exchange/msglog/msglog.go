package msglog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the message log's part of a gateway node's database.
func Schema() pg.Schema { return pg.NewSchema("msglog", migrations) }

// Entry is one recorded exchange (one side's view of one message).
type Entry struct {
	Seq          int64  `json:"seq"`
	AtMicros     int64  `json:"at_us"`
	Direction    string `json:"direction"` // "out": this node is the client's; "in": the provider's
	MessageID    string `json:"message_id"`
	Client       string `json:"client"`
	Service      string `json:"service"`
	Method       string `json:"method"`
	Path         string `json:"path"`
	UserID       string `json:"user_id"`
	Issue        string `json:"issue"`
	RequestHash  []byte `json:"request_hash"`
	ResponseHash []byte `json:"response_hash"`
	Status       int    `json:"status"`
	RequestSig   []byte `json:"request_sig"`
	ResponseSig  []byte `json:"response_sig"`
	PeerSerial   string `json:"peer_serial"`
	// A personal-data call's subject (IIN), purpose and basis (a legal
	// basis or "consent:<id>"), and why this node refused it, if it did:
	// what the node reports for the citizen's access log. Empty for other
	// calls (omitted from the hash, so older entries verify unchanged).
	Subject string `json:"subject,omitempty"`
	Purpose string `json:"purpose,omitempty"`
	Basis   string `json:"basis,omitempty"`
	Refused string `json:"refused,omitempty"`
	Prev    []byte `json:"prev"`
	Hash    []byte `json:"hash"`
}

// Seal signs the chain up to an entry.
type Seal struct {
	Upto      int64  `json:"upto"`
	Hash      []byte `json:"hash"`
	AtMicros  int64  `json:"at_us"`
	Cert      []byte `json:"cert"` // DER of the signing node's certificate
	Signature []byte `json:"signature"`
	// TimestampMicros and TimestampSig are the centre's timestamp of the
	// seal (over SealDigest), absent when the centre was unreachable.
	TimestampMicros int64  `json:"ts_at_us,omitempty"`
	TimestampSig    []byte `json:"ts_sig,omitempty"`
}

// SealDigest is what a seal's timestamp covers: the seal and its signature.
func SealDigest(s Seal) []byte {
	h := sha256.New()
	h.Write(sealMessage(s))
	h.Write(s.Signature)
	return h.Sum(nil)
}

// Timestamper gets a trusted timestamp for a digest (the centre's).
type Timestamper func(ctx context.Context, digest []byte) (atMicros int64, sig []byte, err error)

// ComputeHash is the entry's chain hash: SHA-256 over a domain tag and the
// JSON of the entry with Hash cleared (Prev included).
func ComputeHash(e Entry) []byte {
	e.Hash = nil
	b, _ := json.Marshal(e)
	h := sha256.New()
	h.Write([]byte("ortaq-msglog-v1\n"))
	h.Write(b)
	return h.Sum(nil)
}

func sealMessage(s Seal) []byte {
	var b bytes.Buffer
	b.WriteString("ortaq-msglog-seal-v1\n")
	_ = binary.Write(&b, binary.BigEndian, s.Upto)
	_ = binary.Write(&b, binary.BigEndian, s.AtMicros)
	b.Write(s.Hash)
	return b.Bytes()
}

// Log is a node's message log.
type Log struct {
	pool *pgxpool.Pool
	mu   sync.Mutex // guards key and cert
	key  ed25519.PrivateKey
	cert []byte
	now  func() time.Time
	ts   Timestamper
	reqs chan appendReq
	done chan struct{}
}

type appendReq struct {
	e   Entry
	out chan error
}

// Open starts the log's writer on pool; key and cert (DER) seal it.
func Open(ctx context.Context, pool *pgxpool.Pool, key ed25519.PrivateKey, cert []byte) (*Log, error) {
	l := &Log{pool: pool, key: key, cert: cert, now: time.Now, reqs: make(chan appendReq, 1024), done: make(chan struct{})}
	seq, last, err := l.tip(ctx)
	if err != nil {
		return nil, err
	}
	go l.writer(seq, last)
	return l, nil
}

func (l *Log) tip(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := l.pool.QueryRow(ctx, `SELECT seq, hash FROM gateway_msglog ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, make([]byte, sha256.Size), nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read message log tip: %w", err)
	}
	return seq, hash, nil
}

// Close stops the writer after the queued entries.
func (l *Log) Close() {
	close(l.reqs)
	<-l.done
}

// Append records e and returns once it is committed.
func (l *Log) Append(ctx context.Context, e Entry) error {
	select {
	case err := <-l.Start(e):
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start queues e and returns at once; the channel receives the outcome of
// its commit (nil: durable). It lets an exchange do its other work while
// its entry commits; the entry is written whether or not anyone waits.
func (l *Log) Start(e Entry) <-chan error {
	r := appendReq{e: e, out: make(chan error, 1)}
	l.reqs <- r
	return r.out
}

const maxBatch = 512

func (l *Log) writer(seq int64, last []byte) {
	defer close(l.done)
	for first := range l.reqs {
		batch := []appendReq{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		rows := make([][]any, len(batch))
		s, prev := seq, last
		for i := range batch {
			e := &batch[i].e
			s++
			e.Seq, e.Prev = s, prev
			if e.AtMicros == 0 {
				e.AtMicros = l.now().UnixMicro()
			}
			e.Hash = ComputeHash(*e)
			prev = e.Hash
			rows[i] = []any{e.Seq, e.AtMicros, e.Direction, e.MessageID, e.Client, e.Service, e.Method, e.Path, e.UserID, e.Issue,
				e.RequestHash, e.ResponseHash, e.Status, e.RequestSig, e.ResponseSig, e.PeerSerial, e.Subject, e.Purpose, e.Basis, e.Refused,
				e.Prev, e.Hash}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		if len(rows) <= smallBatch {
			// A few entries: their inserts in one pipelined batch, one
			// implicit transaction. COPY costs more set-up than it saves
			// here, and at a moderate rate most batches hold one entry,
			// whose commit the exchange waits for.
			b := &pgx.Batch{}
			for _, row := range rows {
				b.Queue(insertEntry, row...)
			}
			err = l.pool.SendBatch(ctx, b).Close()
		} else {
			_, err = l.pool.CopyFrom(ctx, pgx.Identifier{"gateway_msglog"}, columns, pgx.CopyFromRows(rows))
		}
		cancel()
		if err == nil {
			seq, last = s, prev
		} else {
			err = fmt.Errorf("append to message log: %w", err)
			// Someone else may have written: start again from the stored tip.
			if ts, tl, terr := l.tip(context.Background()); terr == nil {
				seq, last = ts, tl
			}
		}
		for _, r := range batch {
			r.out <- err
		}
	}
}

var columns = []string{"seq", "at_us", "direction", "message_id", "client", "service", "method", "path", "user_id", "issue",
	"request_hash", "response_hash", "status", "request_sig", "response_sig", "peer_serial", "subject", "purpose", "basis", "refused",
	"prev", "hash"}

// smallBatch is the most entries written by INSERT rather than COPY.
const smallBatch = 8

var insertEntry = func() string {
	params := make([]string, len(columns))
	for i := range columns {
		params[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO gateway_msglog (" + strings.Join(columns, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
}()

// SetTimestamper makes seals carry a timestamp from ts.
func (l *Log) SetTimestamper(ts Timestamper) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ts = ts
}

// SetSigner replaces the sealing key and certificate (after rotation).
func (l *Log) SetSigner(key ed25519.PrivateKey, cert []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.key, l.cert = key, cert
}

// Seal signs the chain up to its newest entry; with nothing new since the
// last seal it does nothing and returns false.
func (l *Log) Seal(ctx context.Context) (bool, error) {
	seq, hash, err := l.tip(ctx)
	if err != nil || seq == 0 {
		return false, err
	}
	l.mu.Lock()
	key, cert, ts := l.key, l.cert, l.ts
	l.mu.Unlock()
	var done bool
	if err := l.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM gateway_msglog_seal WHERE upto = $1)`, seq).Scan(&done); err != nil || done {
		return false, err
	}
	s := Seal{Upto: seq, Hash: hash, AtMicros: l.now().UnixMicro(), Cert: cert}
	s.Signature = ed25519.Sign(key, sealMessage(s))
	var tsAt any
	if ts != nil {
		// A seal without the centre's timestamp is still a seal; the
		// verifier counts it.
		if at, sig, err := ts(ctx, SealDigest(s)); err == nil {
			s.TimestampMicros, s.TimestampSig, tsAt = at, sig, at
		}
	}
	tag, err := l.pool.Exec(ctx, `INSERT INTO gateway_msglog_seal (upto, hash, at_us, cert, signature, ts_at_us, ts_sig) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		s.Upto, s.Hash, s.AtMicros, s.Cert, s.Signature, tsAt, s.TimestampSig)
	if err != nil {
		return false, fmt.Errorf("seal message log: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Report is the outcome of a verification.
type Report struct {
	Entries int64 `json:"entries"`
	Seals   int   `json:"seals"`
	// Timestamped counts seals that carry a valid timestamp of the centre.
	Timestamped int      `json:"timestamped"`
	Problems    []string `json:"problems,omitempty"`
	// Unsealed counts entries after the last seal: their removal from the
	// end of the log could not be detected.
	Unsealed int64 `json:"unsealed"`
}

// OK reports whether nothing was wrong.
func (r Report) OK() bool { return len(r.Problems) == 0 }

type verifier struct {
	ca     *x509.Certificate
	rep    Report
	prev   []byte
	seq    int64
	hashes map[int64][]byte
}

func newVerifier(ca *x509.Certificate) *verifier {
	return &verifier{ca: ca, prev: make([]byte, sha256.Size), hashes: map[int64][]byte{}}
}

func (v *verifier) problem(format string, args ...any) {
	if len(v.rep.Problems) < 100 {
		v.rep.Problems = append(v.rep.Problems, fmt.Sprintf(format, args...))
	}
}

func (v *verifier) entry(e Entry) {
	v.rep.Entries++
	if e.Seq != v.seq+1 {
		v.problem("entry %d: expected entry %d (entries removed or reordered)", e.Seq, v.seq+1)
	}
	if !bytes.Equal(e.Prev, v.prev) {
		v.problem("entry %d: does not chain to the entry before it", e.Seq)
	}
	if h := ComputeHash(e); !bytes.Equal(h, e.Hash) {
		v.problem("entry %d: content altered (hash mismatch)", e.Seq)
	}
	v.seq, v.prev = e.Seq, e.Hash
	v.hashes[e.Seq] = e.Hash
}

func (v *verifier) seal(s Seal) {
	v.rep.Seals++
	cert, err := x509.ParseCertificate(s.Cert)
	if err != nil {
		v.problem("seal %d: bad certificate", s.Upto)
		return
	}
	if v.ca != nil {
		if err := cert.CheckSignatureFrom(v.ca); err != nil {
			v.problem("seal %d: certificate not issued by the CA", s.Upto)
		}
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || !ed25519.Verify(pub, sealMessage(s), s.Signature) {
		v.problem("seal %d: signature does not verify", s.Upto)
	}
	if len(s.TimestampSig) > 0 {
		if v.ca != nil && !catalogue.VerifyTimestamp(v.ca, SealDigest(s), s.TimestampMicros, s.TimestampSig) {
			v.problem("seal %d: timestamp does not verify", s.Upto)
		} else {
			v.rep.Timestamped++
		}
	}
	h, ok := v.hashes[s.Upto]
	if !ok {
		v.problem("seal %d: sealed entry is missing", s.Upto)
	} else if !bytes.Equal(h, s.Hash) {
		v.problem("seal %d: sealed entry was changed", s.Upto)
	}
}

func (v *verifier) finish(lastSeal int64) Report {
	v.rep.Unsealed = v.seq - lastSeal
	if lastSeal > v.seq {
		v.problem("seal %d covers entries that are gone (log truncated)", lastSeal)
		v.rep.Unsealed = 0
	}
	return v.rep
}

// Verify checks the whole stored log. ca may be nil to skip checking who
// issued the sealing certificates.
func (l *Log) Verify(ctx context.Context, ca *x509.Certificate) (Report, error) {
	return VerifyDB(ctx, l.pool, ca)
}

// VerifyDB checks the log stored in pool.
func VerifyDB(ctx context.Context, pool *pgxpool.Pool, ca *x509.Certificate) (Report, error) {
	v := newVerifier(ca)
	err := forEach(ctx, pool, v.entry, nil)
	if err != nil {
		return Report{}, err
	}
	var last int64
	err = forEach(ctx, pool, nil, func(s Seal) { v.seal(s); last = max(last, s.Upto) })
	if err != nil {
		return Report{}, err
	}
	return v.finish(last), nil
}

func forEach(ctx context.Context, pool *pgxpool.Pool, entry func(Entry), seal func(Seal)) error {
	if entry != nil {
		rows, err := pool.Query(ctx, `SELECT `+joinCols()+` FROM gateway_msglog ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				return err
			}
			entry(e)
		}
		return rows.Err()
	}
	rows, err := pool.Query(ctx, `SELECT upto, hash, at_us, cert, signature, coalesce(ts_at_us, 0), ts_sig FROM gateway_msglog_seal ORDER BY upto`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s Seal
		if err := rows.Scan(&s.Upto, &s.Hash, &s.AtMicros, &s.Cert, &s.Signature, &s.TimestampMicros, &s.TimestampSig); err != nil {
			return err
		}
		seal(s)
	}
	return rows.Err()
}

func joinCols() string {
	var b bytes.Buffer
	for i, c := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c)
	}
	return b.String()
}

// line is one line of an archive.
type line struct {
	Kind  string `json:"kind"` // "entry" or "seal"
	Entry *Entry `json:"entry,omitempty"`
	Seal  *Seal  `json:"seal,omitempty"`
}

// Export writes the stored log as an archive (JSON lines: entries, then seals).
func Export(ctx context.Context, pool *pgxpool.Pool, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var werr error
	put := func(l line) {
		if werr == nil {
			werr = enc.Encode(l)
		}
	}
	if err := forEach(ctx, pool, func(e Entry) { put(line{Kind: "entry", Entry: &e}) }, nil); err != nil {
		return err
	}
	if err := forEach(ctx, pool, nil, func(s Seal) { put(line{Kind: "seal", Seal: &s}) }); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	return bw.Flush()
}

// VerifyArchive checks an exported archive offline.
func VerifyArchive(r io.Reader, ca *x509.Certificate) (Report, error) {
	v := newVerifier(ca)
	dec := json.NewDecoder(bufio.NewReader(r))
	var seals []Seal
	for {
		var l line
		err := dec.Decode(&l)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Report{}, fmt.Errorf("read archive: %w", err)
		}
		switch {
		case l.Kind == "entry" && l.Entry != nil:
			v.entry(*l.Entry)
		case l.Kind == "seal" && l.Seal != nil:
			seals = append(seals, *l.Seal)
		default:
			return Report{}, fmt.Errorf("read archive: unknown line kind %q", l.Kind)
		}
	}
	var last int64
	for _, s := range seals {
		v.seal(s)
		last = max(last, s.Upto)
	}
	return v.finish(last), nil
}

// PersonalAfter returns up to limit entries of personal-data calls (those
// naming a subject) after seq, in log order: what a gateway ships for the
// citizens' access log.
func PersonalAfter(ctx context.Context, pool *pgxpool.Pool, seq int64, limit int) ([]Entry, error) {
	rows, err := pool.Query(ctx, `SELECT `+joinCols()+` FROM gateway_msglog WHERE subject <> '' AND seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("read personal-data entries: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanEntry(row pgx.Row) (Entry, error) {
	var e Entry
	err := row.Scan(&e.Seq, &e.AtMicros, &e.Direction, &e.MessageID, &e.Client, &e.Service, &e.Method, &e.Path, &e.UserID, &e.Issue,
		&e.RequestHash, &e.ResponseHash, &e.Status, &e.RequestSig, &e.ResponseSig, &e.PeerSerial,
		&e.Subject, &e.Purpose, &e.Basis, &e.Refused, &e.Prev, &e.Hash)
	return e, err
}
