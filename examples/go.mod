module gorace.example

go 1.26
