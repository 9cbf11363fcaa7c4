"""The one connection configuration of every Kafka client: the line provider's producer, the
functions' Quix applications and setup's admin client all start from `client_config`, so a
secured broker (SASL, TLS with a private CA) is reached the same way by each of them."""

from betting.settings import Settings


def client_config(settings: Settings) -> dict[str, str]:
    """The brokers and their security settings, in librdkafka's names."""
    protocol = settings.kafka_security_protocol
    config = {"bootstrap.servers": settings.kafka_brokers, "security.protocol": protocol}
    if protocol.startswith("SASL_"):
        config |= {
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_sasl_username,
            "sasl.password": settings.kafka_sasl_password.get_secret_value(),
        }
    if protocol.endswith("SSL") and settings.kafka_ca_file:
        config["ssl.ca.location"] = settings.kafka_ca_file
    return config
