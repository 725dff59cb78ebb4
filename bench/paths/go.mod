module gorace.bench/paths

go 1.26
