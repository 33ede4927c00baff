# Replaces DST with a fresh copy of the seed corpus SRC (cmake -P script run
# by the fuzz tests' setup fixture), plus an empty artifacts/ directory for
# crash reproducers.
file(REMOVE_RECURSE ${DST})
file(MAKE_DIRECTORY ${DST}/corpus ${DST}/artifacts)
file(COPY ${SRC}/ DESTINATION ${DST}/corpus)
