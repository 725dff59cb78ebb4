module gorace.bench/micro

go 1.26
