module webswarm/bench/web/ceiling

go 1.26
