// SPDX-License-Identifier: Apache-2.0
// The Go net/http server weft-netbench compares with: a fixed body, keep-alive (the default).
// Usage: http ADDRESS
package main

import (
	"net/http"
	"os"
)

func main() {
	body := []byte("Hello, World!")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		panic(err)
	}
}
