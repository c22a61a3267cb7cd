module github.com/jobvisor/jobvisor/examples/go

go 1.23

require github.com/jobvisor/jobvisor/wrappers/go v0.0.0

require (
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)

// The library from this repository, not a published version.
replace github.com/jobvisor/jobvisor/wrappers/go => ../../wrappers/go
