package table_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/notp-go/notp/table"
)

func Example() {
	dir, _ := os.MkdirTemp("", "table-example-")
	defer os.RemoveAll(dir)
	cfg := table.Config{Dir: dir, Name: "jobs"} // Sync: SyncAlways

	t, err := table.Open(cfg)
	if err != nil {
		panic(err)
	}
	t.HSet("job:42", "owner", []byte("node-a")) // returns once fsynced
	t.SSet("workers", "node-a")
	t.Set("epoch", []byte("7"))
	err = t.SSet("job:42", "x")
	fmt.Println(errors.Is(err, table.ErrWrongType))
	t.Close()

	t, _ = table.Open(cfg) // recovered from the files
	defer t.Close()
	t.ForEach(context.Background(), func(key string, v table.Value) error {
		fmt.Println(key, v.Kind, string(v.Bytes), v.Members, len(v.Fields))
		return nil
	})
	// Output:
	// true
	// epoch scalar 7 [] 0
	// job:42 hash  [] 1
	// workers set  [node-a] 0
}
