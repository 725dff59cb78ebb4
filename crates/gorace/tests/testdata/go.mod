module gorace.test/testdata

go 1.26
