package wbimport

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Summary returns "N imported, M already imported, K skipped, P
// problems" ("would import" on a dry run).
func (r *Report) Summary() string {
	problems := fmt.Sprintf("%d problems", r.Count(Problem))
	if r.Count(Problem) == 1 {
		problems = "1 problem"
	}
	if r.DryRun {
		return fmt.Sprintf("dry run, nothing written: %d would be imported, %d already imported, %d skipped, %s",
			r.Count(WouldImport), r.Count(Already), r.Count(Skipped), problems)
	}
	return fmt.Sprintf("%d imported, %d already imported, %d skipped, %s", r.Count(Imported), r.Count(Already), r.Count(Skipped), problems)
}

// WriteText writes one line per holder and the summary.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if len(r.Rows) > 0 {
		fmt.Fprintln(tw, "SOURCE\tADDRESS\tPOD\tINTERFACE\tSTORE\tSPACE\tRESULT\tDETAIL")
	}
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Source, dash(row.Address), dash(row.Pod), dash(row.Interface),
			dash(row.Store), dash(row.Space), row.Result, row.Detail)
	}
	fmt.Fprintln(tw, r.Summary())
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
