package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/inferbox/inferbox/internal/api/native"
)

func invokeCmd(g *globals) *cobra.Command {
	var (
		contentType string
		accept      string
		variant     string
		body        string
		file        string
	)
	cmd := &cobra.Command{
		Use:   "invoke ENDPOINT [--content-type T] [--accept T] [--variant V] (--body STRING | --file PATH | < stdin)",
		Short: "Send a request to an endpoint and write the model's response to stdout",
		Args:  exactArgs(1, "an endpoint name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader
			switch {
			case cmd.Flags().Changed("body"):
				in = strings.NewReader(body)
			case file != "":
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			default:
				in = cmd.InOrStdin()
			}
			out, err := g.client().Invoke(cmd.Context(), args[0], native.InvokeInput{
				ContentType: contentType, Accept: accept, Variant: variant, Body: in,
			})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), out.Body); err != nil {
				return fmt.Errorf("reading the response: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&contentType, "content-type", "text/csv", "MIME type of the request body")
	f.StringVar(&accept, "accept", "", "MIME type wanted for the response")
	f.StringVar(&variant, "variant", "", "send to this variant instead of routing by weight")
	f.StringVar(&body, "body", "", "request body")
	f.StringVar(&file, "file", "", "file whose contents are the request body")
	cmd.MarkFlagsMutuallyExclusive("body", "file")
	return cmd
}
