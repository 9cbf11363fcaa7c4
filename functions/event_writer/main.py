"""Event writer: `events.taxonomy` → event rows, batched at each checkpoint."""

from betting import topics
from betting.streams import run_writer
from functions.event_writer.apply import apply_event_messages


def main() -> None:
    run_writer(topics.GROUPS.event_writer, topics.EVENTS, apply_event_messages)


if __name__ == "__main__":
    main()
