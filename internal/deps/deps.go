package deps

import (
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/service/kinesis"
	_ "github.com/aws/smithy-go"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/hanwen/go-fuse/v2/fs"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/rs/zerolog"
	_ "github.com/tidwall/wal"
	_ "go.uber.org/goleak"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
	_ "gopkg.in/yaml.v3"
)
