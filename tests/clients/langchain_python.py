"""`langchain-openai` against `psf demo`, with only the base URL and the key set: `invoke`,
`stream`, `bind_tools` with a tool call and its result, structured output, and
`OpenAIEmbeddings` (with `check_embedding_ctx_length=False`, LangChain's setting for any
endpoint that is not OpenAI's own, so it sends text rather than OpenAI's token ids).

Usage: python3 tests/clients/langchain_python.py PATH/TO/psf
"""

import os
import sys
import tempfile

import pydantic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from demo import check, start_demo, stop_demo


class Delivery(pydantic.BaseModel):
    order: str
    days: int


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"4 degrees in {city}"


def run(url: str, key: str) -> None:
    llm = ChatOpenAI(model="assistant", base_url=url, api_key=key, max_retries=0, timeout=30)
    reply = llm.invoke("When does my parcel arrive?")
    check("invoke answers", "When does my parcel arrive?" in reply.content, reply)

    question = (
        "Where is my order 5521 today? It left the warehouse on Monday, the tracking page has not "
        "changed since, and I would like to know whether it will arrive before the weekend."
    )
    pieces = [chunk.content for chunk in llm.stream(question)]
    check("stream arrives in pieces, whole", len(pieces) > 1 and question in "".join(pieces), pieces)

    with_tools = llm.bind_tools([get_weather])
    asked = HumanMessage("Weather in Oslo?")
    called = with_tools.invoke([asked])
    check("bind_tools gets the tool call", bool(called.tool_calls) and called.tool_calls[0]["name"] == "get_weather", called)
    call = called.tool_calls[0]
    result = ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])
    answered = with_tools.invoke([asked, called, result])
    check("the tool's result reaches the model", "4 degrees" in answered.content, answered)

    structured = llm.with_structured_output(Delivery).invoke("When does order 5521 arrive?")
    check("with_structured_output gives the typed object", isinstance(structured, Delivery), structured)

    embeddings = OpenAIEmbeddings(model="embeddings", base_url=url, api_key=key, check_embedding_ctx_length=False)
    vectors = embeddings.embed_documents(["Returns take 14 days", "Where is my parcel?"])
    check("OpenAIEmbeddings embeds each document", len(vectors) == 2 and len(vectors[0]) == 8, vectors)
    check("OpenAIEmbeddings embeds a query", len(embeddings.embed_query("parcel")) == 8)


def main() -> None:
    psf = sys.argv[1] if len(sys.argv) > 1 else "target/debug/psf"
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key = start_demo(psf, "sqlite://" + os.path.join(tmp, "demo.db"))
        try:
            run(url, key)
        finally:
            stop_demo(proc)


if __name__ == "__main__":
    main()
