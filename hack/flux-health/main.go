// Command flux-health prints what Flux concludes about one Kubernetes object
// read as JSON from stdin, with Flux's own code: its kstatus fork
// (github.com/fluxcd/cli-utils, for a Kustomization's `wait` and
// `healthChecks`) and its CEL health check (github.com/fluxcd/pkg/runtime/cel,
// for `healthCheckExprs`) with the entry for the object's kind in EXPRS_YAML.
//
// Usage: flux-health EXPRS_YAML < object.json
// Output: {"flux-kstatus": ..., "flux-cel": ...}
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	fluxstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/apis/kustomize"
	fluxcel "github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "flux-health: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: flux-health EXPRS_YAML < object.json")
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(raw); err != nil {
		fail("stdin is not a Kubernetes object in JSON: %v", err)
	}
	fork, err := fluxstatus.Compute(object.DeepCopy())
	if err != nil {
		fail("kstatus: %v", err)
	}
	exprsYAML, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("reading %s: %v", os.Args[1], err)
	}
	var checks []kustomize.CustomHealthCheck
	if err := yaml.Unmarshal(exprsYAML, &checks); err != nil {
		fail("%s is not a list of healthCheckExprs entries (%v)", os.Args[1], err)
	}
	// Flux picks the entry by apiVersion and kind, as here.
	var check *kustomize.CustomHealthCheck
	for i := range checks {
		if checks[i].APIVersion == object.GetAPIVersion() && checks[i].Kind == object.GetKind() {
			check = &checks[i]
		}
	}
	if check == nil {
		fail("%s has no entry for %s %s", os.Args[1], object.GetAPIVersion(), object.GetKind())
	}
	evaluator, err := fluxcel.NewStatusEvaluator(&check.HealthCheckExpressions)
	if err != nil {
		fail("healthCheckExprs: %v", err)
	}
	cel, err := evaluator.Evaluate(context.Background(), object.DeepCopy())
	if err != nil {
		fail("healthCheckExprs: %v", err)
	}
	out, _ := json.Marshal(map[string]string{
		"flux-kstatus": fork.Status.String(),
		"flux-cel":     cel.Status.String(),
	})
	fmt.Println(string(out))
}
