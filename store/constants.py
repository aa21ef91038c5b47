"""Names shared by ingest (which writes the index) and its readers (app, eval).

Every chunk in the index carries these metadata keys.
"""

SOURCE = "source"  # the page's URL (canonical when the page declares one) or file URI
TITLE = "title"
DESCRIPTION = "description"
LANGUAGE = "language"
HEADING_PATH = "heading_path"  # "H1 > H2 > H3" of the section the chunk comes from
CHUNK_INDEX = "chunk_index"
CONTENT_HASH = "content_hash"  # sha256 of the page's extracted text
FETCHED_AT = "fetched_at"  # ISO-8601 UTC
# The ids of the chunks before and after this one on the same page version (absent at the page's
# ends and on chunks stored before they were written): readers fetch a hit's neighbours by id.
PREV_CHUNK = "prev_chunk"
NEXT_CHUNK = "next_chunk"
# The header and delimiter lines of the table a chunk starts inside (absent otherwise): the chunker
# cut a long table between rows, and rows without their header say nothing of what their cells are.
# Readers write it above the rows; the chunk's text, id and vector stay without it.
TABLE_HEADER = "table_header"

# Collection metadata: the embedder that built the collection.
COLLECTION_MODEL = "opencite:embedding_model"
COLLECTION_DIM = "opencite:embedding_dim"
COLLECTION_SCHEMA = "opencite:schema"
SCHEMA_VERSION = 1
