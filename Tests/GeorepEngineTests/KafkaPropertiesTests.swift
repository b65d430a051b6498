import Foundation
import GeorepEngine
import GeorepKafka
import GeorepModel
import GeorepStore
import Testing

/// The configuration's `kafka_properties` reach the Kafka clients georep makes.
@Suite("Kafka properties", .serialized)
struct KafkaPropertiesTests {
    @Test("a property librdkafka rejects stops the applier with an error naming it")
    func theApplierUsesTheConfiguredProperties() async throws {
        try await withExampleDeployment { config, _ in
            var config = config
            config.regions[1].kafkaProperties = ["socket.nagle.disable": "maybe"]
            // The applier of us-east-1 consumes every region's cluster: here all are one, so
            // eu-west-1's properties apply to its consumer too.
            let store = try await makeReplicaStore(at: config.region(id: "us-east-1")!.store, config: config, logger: testLogger("store"))
            let applier = try Applier(region: "us-east-1", config: config, store: store,
                                      clock: HybridLogicalClock(maxOffsetMillis: 1_000), logger: testLogger("applier"))
            // Without the property the applier would run until stopped.
            let stopper = Task {
                try await Task.sleep(for: .seconds(10))
                applier.stop()
            }
            defer { stopper.cancel() }
            do {
                try await applier.run()
                Issue.record("the applier ran with an invalid property")
            } catch {
                #expect(String(describing: error).contains("socket.nagle.disable"), "\(error)")
            }
            try await store.close()
        }
    }

    @Test("the configuration's properties are under the caller's and carry the cluster's")
    func clientSettingsMergeTheConfiguredProperties() throws {
        var config = try GeorepConfig.load(path: repositoryRoot.appendingPathComponent("schemas/examples/georep.yaml").path)
        config.kafkaProperties = ["security.protocol": "SASL_SSL", "socket.timeout.ms": "30000"]
        config.regions[0].kafkaProperties = ["sasl.username": "east"]
        let cluster = config.regions[0].kafka
        let consumer = config.consumerConfiguration(cluster, groupID: "g", clientID: "c", extra: ["socket.timeout.ms": "1000"])
        #expect(consumer.properties == ["security.protocol": "SASL_SSL", "socket.timeout.ms": "1000", "sasl.username": "east"])
        #expect(consumer.groupID == "g" && consumer.clientID == "c")
        let producer = config.producerConfiguration(cluster, clientID: "p")
        #expect(producer.properties == ["security.protocol": "SASL_SSL", "socket.timeout.ms": "30000", "sasl.username": "east"])
    }
}
