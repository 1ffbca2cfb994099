package constraint

import "errors"

func init() {
	Register("artifact", newArtifact)
}

// newArtifact refuses the artifact constraint (wait for an artifact of the period) until
// Lookup can find artifacts. It is registered rather than left out so a
// schedule that uses it gets this sentence instead of "unknown
// constraint", and so an embedding program can Register a real one.
func newArtifact(any) (Constraint, error) {
	return nil, errors.New("artifact: artifact constraints are not supported yet (a command sensor can check for the data meanwhile)")
}
