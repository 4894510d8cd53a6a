package pg

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// uuidCodec teaches pgx the platform's id type. Without it pgx sees a
// uuid.UUID only as a driver.Valuer: every parameter is formatted to a
// string, refused by the binary codec and parsed back, and every scan goes
// through database/sql's string path; together about 6% of the engine's
// CPU under load (docs/performance.md). With it both directions copy the
// 16 bytes.
type uuidCodec struct{ pgtype.UUIDCodec }

func (c uuidCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return encodeUUIDBinary{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok && format == pgtype.BinaryFormatCode {
		return scanUUIDBinary{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeUUIDBinary struct{}

func (encodeUUIDBinary) Encode(value any, buf []byte) ([]byte, error) {
	id := value.(uuid.UUID)
	return append(buf, id[:]...), nil
}

type scanUUIDBinary struct{}

var errNullUUID = errors.New("cannot scan NULL into uuid.UUID (scan into *uuid.UUID for a nullable column)")

func (scanUUIDBinary) Scan(src []byte, dst any) error {
	if src == nil {
		return errNullUUID
	}
	if len(src) != 16 {
		return fmt.Errorf("invalid length for uuid: %d bytes", len(src))
	}
	copy(dst.(*uuid.UUID)[:], src)
	return nil
}

// registerUUID installs uuidCodec on a connection's type map.
func registerUUID(m *pgtype.Map) {
	m.RegisterType(&pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: uuidCodec{}})
	m.RegisterDefaultPgType(uuid.UUID{}, "uuid")
}
