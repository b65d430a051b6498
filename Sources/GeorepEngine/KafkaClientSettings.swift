public import GeorepKafka
public import GeorepModel

extension GeorepConfig {
    /// Settings of a consumer of the cluster at `bootstrapServers`, carrying that cluster's
    /// configured `kafka_properties` with `extra` over them.
    public func consumerConfiguration(
        _ bootstrapServers: String, groupID: String, clientID: String, extra: [String: String] = [:]
    ) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: groupID)
        configuration.clientID = clientID
        configuration.properties = kafkaProperties(for: bootstrapServers, extra: extra)
        return configuration
    }

    /// Settings of a producer to the cluster at `bootstrapServers`, carrying that cluster's
    /// configured `kafka_properties` with `extra` over them.
    public func producerConfiguration(_ bootstrapServers: String, clientID: String, extra: [String: String] = [:]) -> KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(bootstrapServers: bootstrapServers)
        configuration.clientID = clientID
        configuration.properties = kafkaProperties(for: bootstrapServers, extra: extra)
        return configuration
    }
}
