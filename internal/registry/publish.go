package registry

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"go.yaml.in/yaml/v3"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/web"
)

// handlePublish publishes a registry definition written as the files are
// (YAML) as the registry's next version: POST /api/v1/registries. The
// same officers as the GovStack Database API's modify may: a platform
// administrator, or a registry administrator of the owner agency. Problems
// come back with their line and column, as a published service's do.
func (s *Store) handlePublish(w http.ResponseWriter, r *http.Request) error {
	p, err := manager(r)
	if err != nil {
		return err
	}
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "application/yaml", "application/x-yaml", "text/yaml":
	default:
		return apierr.New(apierr.UnsupportedMedia)
	}
	src, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDefinitionSize))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return apierr.New(apierr.BodyTooLarge)
	}
	if err != nil {
		return err
	}
	env, err := s.modifyEnv(r.Context(), p)
	if err != nil {
		return err
	}
	d, probs := ParseDefinition(src, env)
	if probs != nil {
		return DefinitionRefused(&DefinitionError{positioned(probs)})
	}
	if !CanManage(p, d.Owner) {
		return apierr.New(apierr.Forbidden)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(src, &root)
	place := func(field string) Pos { return at(root.Content[0], field) }
	_, id, err := s.Publish(r.Context(), d.Name, Publisher{p, web.RequestID(r.Context())}, func(prev *Definition, next int) (*Definition, error) {
		var probs []Problem
		if prev != nil && !CanManage(p, prev.Owner) {
			return nil, apierr.New(apierr.Forbidden)
		}
		if prev != nil && prev.Owner != d.Owner {
			probs = append(probs, Problem{place("owner"), "owner.changed", fmt.Sprintf("the registry belongs to %q: its owner cannot change", prev.Owner)})
		}
		if d.Version != next {
			probs = append(probs, Problem{place("version"), "version", fmt.Sprintf("version must be %d, the next after the installed ones", next)})
		}
		if probs != nil {
			return nil, &DefinitionError{positioned(probs)}
		}
		return d, nil
	})
	if err != nil {
		return publishFailure(err)
	}
	w.Header().Set("Location", "/api/v1/registries/"+d.Name)
	db, _ := s.DatabaseOf(d.Name)
	web.WriteJSON(w, http.StatusCreated, map[string]any{"registry": d, "database_id": id, "archived": db.ArchivedAt != nil})
	return nil
}

// publishFailure is the public error of a refused publication.
func publishFailure(err error) error {
	var de *DefinitionError
	switch {
	case errors.As(err, &de):
		return DefinitionRefused(de)
	case errors.Is(err, ErrArchived):
		return apierr.New(apierr.RegistryArchived)
	}
	return err
}

// positioned turns a file's problems into a publication's: their place is
// a line and column, not a request member.
func positioned(probs []Problem) []DefinitionProblem {
	out := make([]DefinitionProblem, len(probs))
	for i, p := range probs {
		out[i] = DefinitionProblem{Code: p.Code, Message: p.Message, Line: p.Pos.Line, Column: p.Pos.Col}
	}
	return out
}
