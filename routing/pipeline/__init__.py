"""The data-plane pipeline: one small module per stage, strung together by the views.

authenticate -> validate -> classify -> guard(in) -> admit -> route -> call ->
guard(out) -> settle. Stages not built yet (classify, guard, admit) have their
place in `routing.views` between validate and route.
"""
