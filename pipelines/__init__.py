"""tfpipe's pipeline layer and CLI: the only code that imports kfp."""
