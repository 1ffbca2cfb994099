package calendar

// Embedding the zone database means every IANA zone loads on every host,
// including containers without /usr/share/zoneinfo. (Go still prefers the
// host's files when they exist; the embedded copy is the fallback.)
import _ "time/tzdata"
