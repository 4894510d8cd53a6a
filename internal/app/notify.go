package app

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/process"
)

// applications tells notify whose an application is and its number, for
// the events that name no citizen (process.payment.requested,
// process.application.returned).
type applications struct{ engine *process.Engine }

func (a applications) Application(ctx context.Context, id string) (notify.Application, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return notify.Application{}, notify.ErrUnknownApplication
	}
	in, err := a.engine.Inspect(ctx, uid)
	if errors.Is(err, process.ErrNotFound) {
		return notify.Application{}, notify.ErrUnknownApplication
	}
	if err != nil {
		return notify.Application{}, err
	}
	return notify.Application{ApplicantIIN: in.Applicant, Number: in.Application.Number}, nil
}
