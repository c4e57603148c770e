// Command sdkbench uploads and downloads one file through an S3 endpoint
// with the AWS SDK for Go's transfer manager (feature/s3/manager), timing
// each direction and the client's own CPU time, so bench/s3/run.sh can
// separate the client's share of an upload from the server's.
//
// Usage: sdkbench -endpoint http://127.0.0.1:PORT -bucket B -key K -file SRC -out DST
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL")
	bucket := flag.String("bucket", "bench", "bucket")
	key := flag.String("key", "sdk.bin", "key")
	file := flag.String("file", "", "file to upload")
	out := flag.String("out", "", "where to download it")
	partMiB := flag.Int64("part-mib", 8, "part size in MiB (upload and download)")
	conc := flag.Int("concurrency", 5, "parts in flight")
	phase := flag.String("phase", "both", "up, down or both")
	flag.Parse()
	if err := run(context.Background(), *endpoint, *bucket, *key, *file, *out, *partMiB<<20, *conc, *phase); err != nil {
		fmt.Fprintln(os.Stderr, "sdkbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, endpoint, bucket, key, file, out string, part int64, conc int, phase string) error {
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("bench", "bench", ""),
	})
	if phase != "down" {
		if err := upload(ctx, client, bucket, key, file, part, conc); err != nil {
			return err
		}
	}
	if phase != "up" {
		return download(ctx, client, bucket, key, out, part, conc)
	}
	return nil
}

func upload(ctx context.Context, client *s3.Client, bucket, key, file string, part int64, conc int) error {
	src, err := os.Open(file)
	if err != nil {
		return err
	}
	defer src.Close()
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.MultipartUploadThreshold, o.Concurrency = part, part, conc
	})
	t, cpu := time.Now(), cpuTime()
	if _, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: &bucket, Key: &key, Body: src}); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	fmt.Printf("upload %.3f s wall, %.3f s client CPU\n", time.Since(t).Seconds(), (cpuTime() - cpu).Seconds())
	return nil
}

func download(ctx context.Context, client *s3.Client, bucket, key, out string, part int64, conc int) error {

	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	defer dst.Close()
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.Concurrency = part, conc
	})
	t, cpu := time.Now(), cpuTime()
	if _, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: &bucket, Key: &key, WriterAt: dst}); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	fmt.Printf("download %.3f s wall, %.3f s client CPU\n", time.Since(t).Seconds(), (cpuTime() - cpu).Seconds())
	return nil
}

// cpuTime is the user+system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
