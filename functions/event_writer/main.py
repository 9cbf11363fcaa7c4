"""Event writer: `events.taxonomy` → event rows, batched at each checkpoint."""

from betting import topics
from betting.streams import DatabaseSink, DeadLetters, build_app, declare_topic
from functions.event_writer.apply import apply_event_messages


def main() -> None:
    app = build_app(topics.GROUPS.event_writer)
    events = declare_topic(app, topics.EVENTS, value_deserializer="bytes")
    dead_letters = DeadLetters(app, topics.EVENTS, topics.GROUPS.event_writer)
    app.dataframe(events).sink(DatabaseSink(apply_event_messages, dead_letters))
    app.run()


if __name__ == "__main__":
    main()
