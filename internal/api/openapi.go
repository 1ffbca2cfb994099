package api

import _ "embed"

// openAPIDoc describes the routes of this package. It is written by hand
// (a test checks that it names every route the server registers), so it
// says what a user needs rather than what a generator can infer.
//
//go:embed openapi.json
var openAPIDoc []byte
