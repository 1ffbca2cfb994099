package store

import (
	"encoding/json"
	"fmt"

	"github.com/talonhq/talon"
)

// DecodeEventDetail fills the payload of an event from its stored detail
// (JSON): the report of a progress event, the artifact of an artifact
// event. Both stores store it the same way.
func DecodeEventDetail(e *talon.Event, detail []byte) error {
	if len(detail) == 0 {
		return nil
	}
	switch e.Type {
	case talon.EventProgress:
		e.Progress = new(talon.Progress)
		if err := json.Unmarshal(detail, e.Progress); err != nil {
			return fmt.Errorf("event %d: decode progress: %w", e.ID, err)
		}
	case talon.EventArtifact:
		e.Artifact = new(talon.Artifact)
		if err := json.Unmarshal(detail, e.Artifact); err != nil {
			return fmt.Errorf("event %d: decode artifact: %w", e.ID, err)
		}
	}
	return nil
}
