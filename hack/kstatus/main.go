// Command kstatus prints the kstatus verdict (Current, InProgress, Failed, ...)
// for one Kubernetes object read as JSON from stdin: the same computation
// Argo CD's and Flux's health checks use, so tests can prove that a
// LoginProfile's conditions read as healthy, progressing or failed.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(raw); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin is not a Kubernetes object in JSON:", err)
		os.Exit(2)
	}
	result, err := status.Compute(object)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
	fmt.Printf("%s\t%s\n", result.Status, result.Message)
}
