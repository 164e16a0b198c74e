"""engramdb inside the agent frameworks people use, each behind its own extra.

`langgraph` (a LangGraph store), `langchain` (chat history and retriever), `llamaindex` (a
memory block), `openai_agents` (a session and function tools). Each takes a `Memory`, an
`AsyncMemory`, a `Client` or an `AsyncClient`, so it works embedded and against a server alike;
`calls` runs an integration's logic, written once, through whichever it was given.
"""
