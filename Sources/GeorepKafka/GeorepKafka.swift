// The Kafka layer. See the type files in this folder.
