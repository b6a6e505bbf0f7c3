"""A suite of drills against one deployment, judged against a list of the system's known defects.

A nightly job that is red forever because of defects everybody knows about tells nobody when
something new breaks. Here each failure of a drill is classed: new, known (a listed defect of
the system, reproduced), or unknown; a listed defect that did not show is reported as not
reproduced. `known` reads the known-defects file, `classify` classes one drill's failures,
`report` writes the suite's JSON, JUnit, HTML index and console lines, `run` runs the drills.
"""
