module gorace.stress

go 1.26
