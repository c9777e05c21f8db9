package ll

import (
	"testing"
)

// FuzzParseCSV: any accepted dataset re-encodes to the same rows, and every row's reference is
// a clean relative path (il.ParseRef), so no dataset line can name a file outside its directory.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("ref,label,rotation\nmnist/train-images-idx3-ubyte.gz:3,7,45\nunseen/a.png,1,0\n"))
	f.Add([]byte("ref,label,rotation\n\"a,b.png\",1,0\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, content []byte) {
		rows, err := ParseCSV(content)
		if err != nil {
			return
		}
		encoded, err := encodeRows(rows)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseCSV(encoded)
		if err != nil {
			t.Fatalf("re-encoded rows are refused: %v", err)
		}
		if len(again) != len(rows) {
			t.Fatalf("%d rows became %d", len(rows), len(again))
		}
		for i := range rows {
			if rows[i] != again[i] {
				t.Fatalf("row %d changed: %+v became %+v", i, rows[i], again[i])
			}
		}
	})
}
